"""``bci-app devices``: what can be opened here — BrainFlow boards, serial ports, LSL streams."""

from __future__ import annotations

from ..argtypes import number


def register(sub) -> None:
    p = sub.add_parser("devices", help="list BrainFlow boards, serial ports and visible LSL streams")
    p.add_argument("--timeout", type=number, default=1.0, help="seconds to look for LSL streams")
    p.add_argument("--all-boards", action="store_true", help="list every BrainFlow board id")
    p.set_defaults(func=run)


def run(args) -> int:
    from acquisition.brainflow_source import SERIAL_BOARDS, list_boards, list_serial_ports
    from acquisition.lsl_env import lsl_scope
    from acquisition.lsl_source import list_lsl_streams

    boards = list_boards()
    common = {"SYNTHETIC_BOARD", "PLAYBACK_FILE_BOARD", *SERIAL_BOARDS}
    print("BrainFlow boards (use --source brainflow:NAME[:PORT]):")
    for bid, name, sfreq, n_eeg in boards:
        if args.all_boards or name in common:
            port = "  needs serial port" if name in SERIAL_BOARDS else ""
            print(f"  {bid:>4}  {name:<28} {n_eeg:>3} EEG ch @ {sfreq:g} Hz{port}")
    if not args.all_boards:  # (not every board of `common` is in `boards`: playback is not)
        print(f"  ... {sum(name not in common for _, name, _, _ in boards)} more (--all-boards)")
    ports = list_serial_ports()
    print("Serial ports:", ", ".join(ports) if ports else "none found")
    streams = list_lsl_streams(args.timeout)
    print(f"LSL streams (scope: {lsl_scope()}; use --source lsl:NAME):")
    if not streams:
        print("  none visible")
    for s in streams:
        print(f"  {s['name']!r:<30} type={s['type']:<10} {s['channels']:>3} ch @ {s['sfreq']:g} Hz"
              f"  source_id={s['source_id']} host={s['hostname']}")
    print("Channel names: add ?channels=C3,Cz,... (the electrode of each channel, in order) to "
          "any source, e.g. --source 'brainflow:cyton:/dev/ttyUSB0?channels=FC3,C3,CP3,Cz,FC4,"
          "C4,CP4,Pz'; BrainFlow names a Cyton's channels Fp1, Fp2, C3, ... whatever the cap.")
    return 0
