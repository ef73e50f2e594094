"""The participatory annotation and human-evaluation web app: write, edit, rate, compare; export and agreement."""
