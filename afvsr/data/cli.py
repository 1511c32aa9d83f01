"""Download and prepare datasets.

  afvsr data download reds --root DIR   fetch train_sharp, train_sharp_bicubic, val_sharp and
                                        val_sharp_bicubic (large zips) into DIR/downloads;
                                        resumable: run it again after an interruption
  afvsr data prepare reds --root DIR    unzip them into DIR/train/train_sharp/<clip>/00000000.png,
                                        DIR/train/train_sharp_bicubic/X4/..., DIR/val/... (checks
                                        every file's CRC; a corrupt zip is named)

Progress goes to stderr; the prepared folders are printed on stdout.
"""

from __future__ import annotations

import argparse

from afvsr.data.download import MIRRORS, REDS_URLS, download_reds, prepare_reds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser(
        "download",
        help="download a dataset's archives (resumable)",
        description="Fetch the REDS zips into ROOT/downloads; an interrupted download resumes "
        "(automatically, and when run again). Progress on stderr, file paths on stdout.",
    )
    prepare = actions.add_parser(
        "prepare",
        help="unzip downloaded archives into the layout",
        description="Unzip ROOT/downloads/*.zip into ROOT/train/train_sharp/<clip>/00000000.png, "
        "ROOT/train/train_sharp_bicubic/X4/..., ROOT/val/...; every member's CRC is checked and "
        "a corrupt zip is named. Prepared folders on stdout.",
    )
    for p in (download, prepare):
        p.add_argument("dataset", choices=["reds"], help="dataset (only reds so far)")
        p.add_argument("--root", required=True, help="dataset folder, e.g. datasets/REDS")
        p.add_argument(
            "--only",
            nargs="+",
            choices=list(REDS_URLS),
            metavar="ZIP",
            help=f"only these archives (default all: {', '.join(REDS_URLS)})",
        )
    download.add_argument(
        "--mirror", choices=MIRRORS, default="snu", help="where to fetch from (default snu)"
    )
    download.add_argument(
        "--base-url", help="fetch <BASE_URL>/<zip> instead (a mirror, or a local test server)"
    )
    download.add_argument("--retries", type=int, default=3, help="resumed attempts per file")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    prepare.add_argument("--force", action="store_true", help="redo folders that already exist")


def run(args: argparse.Namespace) -> int:
    if args.action == "download":
        paths = download_reds(
            args.root,
            names=args.only,
            base_url=args.base_url,
            mirror=args.mirror,
            retries=args.retries,
            progress=not args.quiet,
        )
    else:
        paths = prepare_reds(args.root, names=args.only, force=args.force).values()
    for path in paths:
        print(path)
    return 0
