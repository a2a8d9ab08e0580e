"""Running ``bci-app`` in-process in tests."""

from __future__ import annotations


def fails(capsys, *args: str) -> str:
    """Run ``bci-app ARGS`` in-process; it must exit 2 with ``bci-app: error: ...``. Returns its
    stderr."""
    from bci_app.cli import main

    rc = main(list(args))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "bci-app: error: " in err
    return err
