"""Pictures people look at: matches, trajectories, plots."""
