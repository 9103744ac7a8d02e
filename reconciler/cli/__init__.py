"""The command line: argument parsing, the commands, and where they write."""
