"""``bci-app repair``: make an XDF recording cut short by a crash, kill or power cut loadable."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "repair",
        help="repair an XDF recording interrupted by a crash (cut a torn chunk, add footers)",
        description=(
            "Walk the file's chunks, cut everything from the first incomplete or garbled chunk "
            "on (a write torn by a kill or power cut), drop a garbled chunk inside the file "
            "whose length is intact (the chunks after it are kept; a garbled length drops the "
            "bytes up to the next boundary chunk only), leave out every chunk of a stream whose "
            "header is unreadable (its samples cannot be read without it; each such stream is "
            "listed), and append the stream footers that a crashed recorder never wrote. A "
            "repair in place that drops chunks inside the file keeps the original as "
            "REC.before-repair.xdf. A complete file is left unchanged."
        ),
    )
    p.add_argument("recording", metavar="REC.xdf", help="the XDF file")
    p.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help="write the repaired copy there and leave the original untouched (the recording's own "
        "path repairs it in place)",
    )
    p.add_argument("--check", action="store_true", help="only report what a repair would do")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from acquisition.xdf_writer import kept_original_path, repair_xdf, same_path, scan_xdf

    from ..errors import RecordingError

    if args.out is not None and same_path(args.recording, args.out):
        args.out = None  # --out REC is an in-place repair (still written via a temporary file)
    if args.out is not None and os.path.lexists(args.out):  # also for a complete file's copy
        raise RecordingError(
            f"--out: {args.out} already exists; a repair never replaces another file. Fix: "
            f"choose another --out path, or delete {args.out} yourself; {args.recording} is "
            "unchanged."
        )
    scan = scan_xdf(args.recording)
    names = {sid: s.name for sid, s in scan.streams.items()}
    print(
        f"{args.recording}: {scan.size} bytes, {scan.n_chunks} complete chunks, "
        f"{len(scan.streams)} streams",
        flush=True,
    )
    for sid, s in scan.streams.items():
        print(
            f"  stream {sid} {s.name!r}: {s.count} samples"
            + ("" if s.has_footer else " (no footer)"),
            flush=True,
        )
    for a, b, problem in scan.skipped:
        print(f"  malformed chunk inside the file: {b - a} bytes ({problem}); the chunks "
              "after it are intact", flush=True)
    for ls in scan.lost.values():
        print(f"  unreadable {ls.describe()}; a repair leaves this stream out", flush=True)
    if scan.torn_bytes:
        print(f"  torn tail: {scan.torn_bytes} bytes ({scan.problem})", flush=True)
    missing = [names[sid] for sid in scan.missing_footers]
    if not scan.cut_bytes and not missing:
        print("file is complete; nothing to repair", flush=True)
        if args.out:
            import shutil

            try:
                shutil.copyfile(args.recording, args.out)
            except OSError as err:
                raise RecordingError(
                    f"--out: cannot write {args.out} ({err.strerror or err}); fix: pass a "
                    "writable file path, or drop --out"
                ) from None
            print(f"copied -> {args.out}", flush=True)
        return 0
    lost = (f", leave out {len(scan.lost)} unreadable stream(s) "
            f"({', '.join(str(sid) for sid in scan.lost)})" if scan.lost else "")
    if args.check:
        print(
            f"a repair would cut {scan.cut_bytes} bytes{lost} and write {len(missing)} footers "
            "(added, or rewritten for a stream that lost a chunk)", flush=True
        )
        return 1
    keep = kept_original_path(args.recording) if args.out is None and scan.drops_inside else None
    try:
        out = repair_xdf(args.recording, out=args.out, keep=keep)
    except OSError as err:
        where = f"--out {args.out}" if args.out else f"the folder of {args.recording}"
        raise RecordingError(
            f"repair: cannot write the repaired file to {where} ({err.strerror or err}); the "
            "recording is unchanged. Fix: pass --out PATH in a writable folder."
        ) from None
    print(
        f"repaired -> {out}: cut {scan.cut_bytes} bytes{lost}, wrote footers for {len(missing)} "
        "streams", flush=True,
    )
    if keep is not None:
        print(f"the original is kept as {keep} (the repair dropped chunks inside it)", flush=True)
    if scan.lost and not scan.signal_left:
        print(f"warning: no signal stream is left in {out} (only markers or irregular streams):"
              " loading it as EEG fails; every recorded sample is still in "
              f"{keep if keep is not None else args.recording}", flush=True)
    return 0
