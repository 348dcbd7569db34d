"""IMAP adapter (``imap``): connect, read new mail by UID, mark it processed. It only
speaks IMAP; which mailboxes to read and what becomes of the mail is ``support``'s."""
