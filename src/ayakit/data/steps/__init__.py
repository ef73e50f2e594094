"""The data build's datatrove steps, one module per stage; base holds what every stage shares."""
