"""The vci command line: click commands that parse, make one library call and print."""
