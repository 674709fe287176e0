"""The command line: invoke tasks, rendering, the console script. The only layer that prints."""
