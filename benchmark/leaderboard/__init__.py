"""mmbench.leaderboard.build."""
