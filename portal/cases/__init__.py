"""Cases and referrals: forming a case, its documents, the referral procedure, redaction, oversight
figures."""
