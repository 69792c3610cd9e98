"""``python -m ld_eventsource``: the ``sse`` command-line tool."""

from ld_eventsource._cli.main import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
