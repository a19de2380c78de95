"""``sigalex render``: a signal file → a time-frequency image (PNG)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ParameterError
from ._common import key_value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render a signal file as a time-frequency image (PNG)",
        description="Render a signal file (.txt, .csv, .npy, .npz, .wav, .flac, .ogg, …) as an "
        "RGB time-frequency image.",
        epilog="Example: sigalex render S001.txt --sample-rate 173.61 --method cwt --fmin 0.5 "
        "--fmax 40 --out s001.png",
    )
    p.add_argument("input", type=Path, help="signal file")
    p.add_argument("--out", "-o", type=Path, required=True, help="output PNG path")
    p.add_argument(
        "--method", "-m", default="stft", help="stft, mel, cwt or hilbert (default stft)"
    )
    p.add_argument("--sample-rate", type=float, help="Hz; required for files that do not carry it")
    p.add_argument("--size", type=int, default=227, help="image size in pixels (default 227)")
    p.add_argument("--colormap", default="viridis", help="matplotlib colormap (default viridis)")
    p.add_argument(
        "--channels", default="mean", help="multichannel input: mean, tile or each (default mean)"
    )
    p.add_argument("--scale", default="db", help="db, log or linear (default db)")
    p.add_argument("--top-db", type=float, default=80.0, help="dB range kept below the peak")
    p.add_argument("--normalize", default="minmax", help="minmax, percentile or fixed")
    p.add_argument("--vmin", type=float, help="lower end for --normalize fixed")
    p.add_argument("--vmax", type=float, help="upper end for --normalize fixed")
    p.add_argument("--fmin", type=float, help="lowest frequency, Hz")
    p.add_argument("--fmax", type=float, help="highest frequency, Hz")
    p.add_argument("--n-fft", type=int, help="FFT length (stft, mel)")
    p.add_argument("--hop-length", type=int, help="samples between frames")
    p.add_argument("--start-s", type=float, default=0.0, help="start of the excerpt, seconds")
    p.add_argument("--duration-s", type=float, help="length of the excerpt, seconds (default: all)")
    p.add_argument(
        "--param",
        "-p",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="any other transform parameter, e.g. -p n_mels=64 -p spacing=linear -p percentiles=[5,95] (repeatable; values read as TOML, bare words as text)",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    from ..frontend import spectrogram
    from ..io import load_recording
    from ..render import save_png

    if not args.start_s >= 0:  # also NaN
        raise ParameterError(f"--start-s {args.start_s:g}: must be >= 0 seconds")
    if args.duration_s is not None and not args.duration_s > 0:
        raise ParameterError(f"--duration-s {args.duration_s:g}: must be > 0 seconds")
    if args.sample_rate is not None and not 0 < args.sample_rate < float("inf"):
        raise ParameterError(f"--sample-rate {args.sample_rate:g}: must be a positive number of Hz")
    options = {} if args.sample_rate is None else {"sample_rate": args.sample_rate}
    rec = load_recording(args.input, **options)
    start = round(args.start_s * rec.sample_rate)
    if start >= rec.n_times:
        raise ParameterError(
            f"--start-s {args.start_s:g} is past the end of {args.input} ({rec.duration_s:.3f} s)"
        )
    stop = None if args.duration_s is None else start + round(args.duration_s * rec.sample_rate)
    data = rec.data[:, start:stop]
    params = {
        k: v
        for k, v in {
            "fmin": args.fmin,
            "fmax": args.fmax,
            "n_fft": args.n_fft,
            "hop_length": args.hop_length,
            "vmin": args.vmin,
            "vmax": args.vmax,
        }.items()
        if v is not None
    }
    params.update(dict(args.param))
    signal = data[0] if data.shape[0] == 1 else data
    images = spectrogram(
        signal,
        rec.sample_rate,
        method=args.method,
        size=args.size,
        colormap=args.colormap,
        channels=args.channels,
        scale=args.scale,
        top_db=args.top_db,
        normalize=args.normalize,
        **params,
    )
    what = f"{args.method}, {data.shape[0]} channel(s), {data.shape[1] / rec.sample_rate:.2f} s"
    if images.ndim == 4:
        taken: set[str] = set()
        for k, (name, image) in enumerate(zip(rec.channel_names, images, strict=True)):
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "channel"
            if safe.lower() in taken:  # names that clean to the same text: keep every image
                safe = f"{safe}-{k}"
            taken.add(safe.lower())
            out = save_png(image, args.out.with_name(f"{args.out.stem}_{safe}{args.out.suffix}"))
            print(f"wrote {out}")
        print(f"{len(images)} images ({what})")
    else:
        save_png(images, args.out)
        print(f"wrote {args.out} ({images.shape[1]}x{images.shape[0]}, {what})")
    return 0
