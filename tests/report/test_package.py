"""The report package imports its plotting modules only when they are used."""

import subprocess
import sys


def test_tables_and_console_do_not_import_matplotlib():
    code = (
        "import sys, emocontext.cli.predict, emocontext.report.tables, emocontext.report.console; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_names_resolve_on_first_use():
    import emocontext.report as report

    assert callable(report.write_html_report) and callable(report.timeline_figure)
    assert "write_annotated_video" in dir(report)
    try:
        report.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
