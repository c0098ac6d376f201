"""How personal data is shown when it must be shown at all."""


def mask_phone(phone: str) -> str:
    """138****0000: a mainland mobile keeps its first 3 and last 4 digits, as WeChat and the
    carriers show it; a shorter number keeps 2 and 2; a very short one shows nothing."""
    if len(phone) >= 11:
        return f"{phone[:3]}****{phone[-4:]}"
    if len(phone) >= 7:
        return f"{phone[:2]}****{phone[-2:]}"
    return "****"
