"""The referral domain without Flask: workflow, deadlines and holiday calendar, packages, log."""
