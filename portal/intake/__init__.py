"""Taking a tip in: the filing itself, receipts, uploads and their cleaning, the reporter's
follow-up."""
