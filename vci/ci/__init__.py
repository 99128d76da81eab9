"""CI integrations: GitHub Actions step outputs and summaries (github), Jenkins jobs (jenkins)."""
