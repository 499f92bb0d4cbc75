"""Who may do what and who holds which key: access, sessions, sign-in, accounts, keys, custody,
ciphertext."""
