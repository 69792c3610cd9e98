"""The ``sse`` command-line tool (private: its interface is the command line)."""
