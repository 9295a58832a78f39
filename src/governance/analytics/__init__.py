"""Analytics: variance, verdicts, concessions, approval cycle times, outcomes, reviews and
consistency, aggregated in SQL and grouped by any deal, rep or playbook dimension."""
