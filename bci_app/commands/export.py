"""``bci-app export``: an XDF recording to FIF, EDF or a BIDS dataset."""

from __future__ import annotations

from ..argtypes import number
from ..recording import EXPORT_FORMATS


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="convert an XDF recording to FIF, EDF or BIDS (MNE Raw with marker annotations)",
        description=(
            "Read an XDF recording (bci_app or LabRecorder) as an MNE Raw in volts with its "
            "markers "
            "as annotations (gaps as BAD_gap / BAD_ACQ_SKIP) and write it as FIF (lossless), EDF+ "
            "(16 bit) or a BIDS EEG dataset (BrainVision + events.tsv + sidecars)."
        ),
    )
    p.add_argument("recording", metavar="REC.xdf", help="the XDF recording")
    p.add_argument("--to", required=True, choices=EXPORT_FORMATS, help="output format")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR_OR_FILE",
        help="output folder (default: beside the recording; BIDS: <folder>/bids), or for fif/"
        "edf the file itself (e.g. s01_raw.fif, s01.edf)",
    )
    p.add_argument("--stream", default=None, help="signal stream name (default: the EEG stream)")
    p.add_argument("--subject", default=None, help="BIDS subject (default: the recording's)")
    p.add_argument("--task", default=None, help="BIDS task (default: the recording's, or 'bci')")
    p.add_argument("--session", default=None, help="BIDS session label")
    p.add_argument("--run", type=int, default=None, help="BIDS run number")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--max-fill", type=number, default=60.0, metavar="SECONDS",
                   help="fill gaps up to this long with zeros marked BAD_ACQ_SKIP, so every "
                   "marker keeps its time (default 60; markers inside a longer gap are left out "
                   "with a warning)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..recording import export_recording

    out = export_recording(
        args.recording,
        args.to,
        args.out,
        stream=args.stream,
        subject=args.subject,
        task=args.task,
        session=args.session,
        run=args.run,
        overwrite=args.overwrite,
        max_fill=args.max_fill,
    )
    print(f"exported {args.recording} -> {out}", flush=True)
    return 0
