"""A labelled set for the PII detector: real-looking support text with every piece of
personal data marked (kind, exact substring), and look-alikes that must stay untouched.
Names known from the ticket are passed as ``NAMES``."""

# The vendors' published sample credentials, assembled here so that secret scanners do
# not take this file for a leak: the scrubber must still find them in the texts.
STRIPE_SAMPLE = "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc"
GITHUB_SAMPLE = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"


NAMES = ["Casey", "Customer", "Alex Agent", "Alex", "Agent", "Priya", "Raman"]

CASES = [
    # ---- EMAIL --------------------------------------------------------------------------
    (
        "Please reply to casey.customer@acme.example instead.",
        [("EMAIL", "casey.customer@acme.example")],
    ),
    (
        "Billing contact: ap+invoices@globex.co.uk (cc finance@globex.co.uk)",
        [("EMAIL", "ap+invoices@globex.co.uk"), ("EMAIL", "finance@globex.co.uk")],
    ),
    ("My login is j_doe-77@mail.example.org", [("EMAIL", "j_doe-77@mail.example.org")]),
    ("Use the @mention feature or email support at the address in settings.", []),
    ("Our handle is @acme on social media.", []),
    # ---- PHONE --------------------------------------------------------------------------
    ("Call me on +44 20 7946 0958 after 3pm.", [("PHONE", "+44 20 7946 0958")]),
    ("My mobile: (415) 555-2671", [("PHONE", "(415) 555-2671")]),
    (
        "Reach our office at +1-212-555-0147 or +49 30 901820.",
        [("PHONE", "+1-212-555-0147"), ("PHONE", "+49 30 901820")],
    ),
    ("WhatsApp +33 6 12 34 56 78 is best", [("PHONE", "+33 6 12 34 56 78")]),
    ("India office: +91 98765 43210", [("PHONE", "+91 98765 43210")]),
    ("phone 212.555.0199 works too", [("PHONE", "212.555.0199")]),
    ("Order #100234 shipped on 2026-11-02 for $1,249.00.", []),
    ("Your ticket HD-20261122-0042 was updated.", []),
    ("The build 2026.11.22 fails; tracking number 1Z999AA10123456784.", []),
    ("We had 3,500 users and 12 admins in 2025.", []),
    # ---- CARD ---------------------------------------------------------------------------
    ("I was charged twice on card 4111 1111 1111 1111.", [("CARD", "4111 1111 1111 1111")]),
    ("Card: 5500-0000-0000-0004 exp 12/28", [("CARD", "5500-0000-0000-0004")]),
    ("Amex 378282246310005 was declined", [("CARD", "378282246310005")]),
    ("new card 6011111111111117 please update", [("CARD", "6011111111111117")]),
    ("Invoice 4111111111111112 is wrong", []),  # fails Luhn
    ("Order number 1234567812345678 has not arrived", []),  # no network prefix + Luhn fails
    ("Reference 9999 9999 9999 9995 from the bank", []),  # Luhn-valid, no network prefix
    # ---- IBAN ---------------------------------------------------------------------------
    (
        "Refund to IBAN DE89 3704 0044 0532 0130 00 please",
        [("IBAN", "DE89 3704 0044 0532 0130 00")],
    ),
    ("Our account GB82WEST12345698765432 changed", [("IBAN", "GB82WEST12345698765432")]),
    ("FR1420041010050500013M02606 is the new one", [("IBAN", "FR1420041010050500013M02606")]),
    ("Product code DE12 3456 7890 1234 5678 90 in the catalogue", []),  # bad checksum
    # ---- NATIONAL_ID --------------------------------------------------------------------
    ("My SSN is 123-45-6789 for the tax form", [("NATIONAL_ID", "123-45-6789")]),
    ("NI number AB 12 34 56 C on file", [("NATIONAL_ID", "AB 12 34 56 C")]),
    ("SSN 219-09-9999 on the W-9", [("NATIONAL_ID", "219-09-9999")]),
    ("social security number: 078051120", [("NATIONAL_ID", "078051120")]),
    ("passport no. 533380006 expires soon", [("NATIONAL_ID", "533380006")]),
    ("Error code 12-345-6789 since 2026-11-22, see KB-1234-56.", []),
    ("Error 000-12-3456 appears in the log", []),  # not a valid SSN range
    # ---- IP -----------------------------------------------------------------------------
    ("Requests from 203.0.113.42 are blocked", [("IP", "203.0.113.42")]),
    (
        "Whitelist 10.0.0.12 and 2001:db8:85a3::8a2e:370:7334",
        [("IP", "10.0.0.12"), ("IP", "2001:db8:85a3::8a2e:370:7334")],
    ),
    ("We run version 4.2.1 and build 10.4.22.1.3", []),
    ("Value 999.1.1.1 is not an address", []),
    # ---- ADDRESS ------------------------------------------------------------------------
    ("Ship it to 742 Evergreen Terrace, Springfield.", [("ADDRESS", "742 Evergreen Terrace")]),
    (
        "Our office moved to 1600 Amphitheatre Parkway, Suite 200",
        [("ADDRESS", "1600 Amphitheatre Parkway, Suite 200")],
    ),
    ("Send to Hauptstraße 5, 10115 Berlin", [("ADDRESS", "Hauptstraße 5")]),
    ("Invoice address: 12 rue de la Paix, Paris", [("ADDRESS", "12 rue de la Paix")]),
    ("We have 3 Boards and 12 Cards on the Street view.", []),
    ("Step 2 Open Settings then Drive sync", []),
    # ---- SECRET -------------------------------------------------------------------------
    (
        "my key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z stopped working",
        [("SECRET", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z")],
    ),
    (
        "curl -H 'Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0' fails",
        [("SECRET", "9f8e7d6c5b4a39281706f5e4d3c2b1a0")],
    ),
    (
        f"stripe {STRIPE_SAMPLE} returns 401",
        [("SECRET", STRIPE_SAMPLE)],
    ),
    (
        f"token {GITHUB_SAMPLE} leaked",
        [("SECRET", GITHUB_SAMPLE)],
    ),
    ("AWS AKIAIOSFODNN7EXAMPLE in config", [("SECRET", "AKIAIOSFODNN7EXAMPLE")]),
    ("config: api_key=9c1f0e2d8a7b6c5d4e3f and debug=true", [("SECRET", "9c1f0e2d8a7b6c5d4e3f")]),
    ("my password is Hunter2Hunter2!", [("SECRET", "Hunter2Hunter2!")]),
    ("Reset your password in Settings → Security.", []),
    ("The API key field is empty in the form.", []),
    ("Request id 3f2b9c1e-8d4a-4b6f-9e2d-7c1a5b3e9f00 failed", []),  # a UUID is not a secret
    # ---- URL_CREDENTIALS ----------------------------------------------------------------
    (
        "Webhook https://admin:s3cr3t@hooks.acme.example/flowboard fails",
        [("URL_CREDENTIALS", "https://admin:s3cr3t@hooks.acme.example/flowboard")],
    ),
    (
        "DB is postgres://app:pa55word@db.internal:5432/prod",
        [("URL_CREDENTIALS", "postgres://app:pa55word@db.internal:5432/prod")],
    ),
    ("See https://docs.flowboard.example/api/webhooks for details", []),
    # ---- NAME ---------------------------------------------------------------------------
    (
        "Hi, this is Casey from Acme. Alex Agent helped me last week.",
        [("NAME", "Casey"), ("NAME", "Alex Agent")],
    ),
    ("Thanks Priya Raman!", [("NAME", "Priya"), ("NAME", "Raman")]),
    ("Dear customer, your board is ready.", [("NAME", "customer")]),
    # ---- mixed --------------------------------------------------------------------------
    (
        "Casey here (casey@acme.example, +1 415 555 2671). Card 4242 4242 4242 4242 was charged "
        "twice for order #88231; from IP 198.51.100.7.",
        [
            ("NAME", "Casey"),
            ("EMAIL", "casey@acme.example"),
            ("PHONE", "+1 415 555 2671"),
            ("CARD", "4242 4242 4242 4242"),
            ("IP", "198.51.100.7"),
        ],
    ),
    ("Export fails at 95% with error E-4031 since version 3.14 on Nov 2.", []),
    ("The invoice total is 1,234,567.89 USD across 12 months.", []),
    # ---- harder cases, written after the detector ---------------------------------------
    (
        "Write to <dana.ortiz@acme.example> or DANA@ACME.EXAMPLE",
        [("EMAIL", "dana.ortiz@acme.example"), ("EMAIL", "DANA@ACME.EXAMPLE")],
    ),
    ("Office line +1 (800) 555-0199 ext. 204", [("PHONE", "+1 (800) 555-0199 ext. 204")]),
    ("UK mobile 07911 123456", [("PHONE", "07911 123456")]),
    (
        "Visa 4012888888881881 and iban de89370400440532013000",
        [("CARD", "4012888888881881"), ("IBAN", "de89370400440532013000")],
    ),
    ("Deliver to 221B Baker Street, London", [("ADDRESS", "221B Baker Street")]),
    ("HQ: 10 Downing St. London", [("ADDRESS", "10 Downing St.")]),
    ("Only ::1 and 127.0.0.1 can reach it", [("IP", "::1"), ("IP", "127.0.0.1")]),
    (
        "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        [("SECRET", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx")],
    ),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        [
            (
                "SECRET",
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            )
        ],
    ),
    ("login casey / pwd: abc123xyz", [("NAME", "casey"), ("SECRET", "abc123xyz")]),
    ("Meeting at 10.30 on 22.11.2026, ISBN 978-0-306-40615-7", []),
    ("SKU 4006381333931 is out of stock", []),
    ("Coordinates 48.8566, 2.3522 and price €1.234,56", []),
    ("Upgrade from 1.0.0.1 to 1.0.0.2 broke exports", []),
    ("Customer ID 8842-1193 and contract C-2026-0042", []),
]
