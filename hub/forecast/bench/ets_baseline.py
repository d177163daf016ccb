#!/usr/bin/env python3
"""ETS baseline for the hub's forecast benchmark.

Reads daily sales histories as CSV (``unique_id,ds,y[,stocked_out]``; a path argument or
stdin), fits statsforecast's AutoETS with a weekly season (season_length=7) to each series and
prints the forecasts as CSV (``unique_id,ds,yhat``) on stdout.

This is the forecaster a user would pick off the shelf: it sees the recorded sales only. It
does not see the demand signals (holidays, promotions, weather) and treats stock-out days as
ordinary sales, exactly like fitting ETS on a sales export. Series too short for AutoETS fall
back to statsforecast's Naive model (``fallback_model``). Negative forecasts are printed as
they come; the scorer clips them to 0.

Usage: ets_baseline.py [--horizon 7] [PATH|-] > forecasts.csv
Install: pip install -r requirements.txt (the hub's bench command makes the venv).
"""

import argparse
import sys

import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, Naive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="-", help="history CSV, '-' for stdin")
    parser.add_argument("--horizon", type=int, default=7, help="days to forecast")
    args = parser.parse_args()

    source = sys.stdin if args.path == "-" else args.path
    df = pd.read_csv(source, dtype={"unique_id": str})
    missing = {"unique_id", "ds", "y"} - set(df.columns)
    if missing:
        print(f"history CSV lacks columns: {sorted(missing)}", file=sys.stderr)
        return 2
    df = df[["unique_id", "ds", "y"]].copy()
    df["ds"] = pd.to_datetime(df["ds"])
    df["y"] = df["y"].astype(float)

    sf = StatsForecast(
        models=[AutoETS(season_length=7)],
        freq="D",
        n_jobs=1,
        fallback_model=Naive(),
    )
    forecasts = sf.forecast(df=df, h=args.horizon)
    forecasts = forecasts.reset_index() if "unique_id" not in forecasts.columns else forecasts
    out = forecasts.rename(columns={"AutoETS": "yhat"})[["unique_id", "ds", "yhat"]]
    out["ds"] = out["ds"].dt.strftime("%Y-%m-%d")
    out.to_csv(sys.stdout, index=False, float_format="%.6f")
    return 0


if __name__ == "__main__":
    sys.exit(main())
