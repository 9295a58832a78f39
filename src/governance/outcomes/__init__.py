"""Outcomes: how deals closed, per term what was conceded, held, traded and what it cost; the
rep's preparation before and after-action review after."""
