"""Screenshot of the draw window recognising a digit drawn with mouse strokes (the README figure).

    xvfb-run -s "-screen 0 800x600x24" python experiments/draw_screenshot.py DIR \
        [--digit 3] [--out docs/figures/draw_window.png]

DIR is a saved model (``mlpjax train --output DIR``). Needs a display (or xvfb-run) and Pillow with xcb.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlpjax.draw import recognize, window
from mlpjax.runs.checkpoint import load_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("directory", metavar="DIR", help="a run directory from mlpjax train --output DIR")
    p.add_argument("--digit", type=int, default=3, choices=range(10), help="which demo strokes to draw (default: 3)")
    p.add_argument("--out", default="docs/figures/draw_window.png", help="PNG to write")
    args = p.parse_args(argv)

    window.check_display(probe=True)
    with window.DrawWindow(load_model(args.directory), live_ms=None) as win:
        for stroke in recognize.DEMO_STROKES[args.digit]:
            win.draw_stroke(stroke)
        result = win.recognise()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        win.screenshot(args.out)
    print(f"drew a {args.digit}, recognised {result.text if result else 'nothing'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
