"""The console: a small server-rendered web app beside the Dagster UI (home, executive scorecard;
more pages join `app.ROUTES`)."""
