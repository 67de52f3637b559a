"""MSP acronyms spelled out before embedding, so that "M365" and "Microsoft 365" meet.

all-MiniLM-L6-v2 places an acronym far from its words ("EDR" vs "endpoint detection and
response"); MSP notes are full of them and questions often spell them out (or the reverse).
Each acronym found as a whole word is embedded as ``ACRONYM (expansion)``; the stored text is
unchanged. The expansions are the acronyms' standard meanings in IT and MSP work, nothing
more (no paraphrase), so no question's wording is presumed.
"""

import re

GLOSSARY = {
    "2FA": "two-factor authentication",
    "AD": "Active Directory",
    "AP": "access point",
    "ARR": "annual recurring revenue",
    "AV": "antivirus",
    "BDR": "backup and disaster recovery",
    "BEC": "business email compromise",
    "CSAT": "customer satisfaction",
    "CVE": "Common Vulnerabilities and Exposures",
    "DLP": "data loss prevention",
    "DR": "disaster recovery",
    "EDR": "endpoint detection and response",
    "EOL": "end of life",
    "GDPR": "General Data Protection Regulation",
    "HIPAA": "Health Insurance Portability and Accountability Act",
    "IAM": "identity and access management",
    "ISP": "internet service provider",
    "KB": "knowledge base",
    "LAN": "local area network",
    "M365": "Microsoft 365",
    "MDM": "mobile device management",
    "MDR": "managed detection and response",
    "MFA": "multi-factor authentication",
    "MRR": "monthly recurring revenue",
    "MSA": "master services agreement",
    "MSP": "managed service provider",
    "NAS": "network-attached storage",
    "NGFW": "next-generation firewall",
    "NOC": "network operations center",
    "NPS": "Net Promoter Score",
    "O365": "Office 365",
    "PCI": "Payment Card Industry",
    "PSA": "professional services automation",
    "QBR": "quarterly business review",
    "RMM": "remote monitoring and management",
    "RPO": "recovery point objective",
    "RTO": "recovery time objective",
    "SaaS": "software as a service",
    "SIEM": "security information and event management",
    "SLA": "service level agreement",
    "SOC": "security operations center",
    "SOW": "statement of work",
    "SSO": "single sign-on",
    "UPS": "uninterruptible power supply",
    "VDI": "virtual desktop infrastructure",
    "VM": "virtual machine",
    "VoIP": "Voice over Internet Protocol",
    "VPN": "virtual private network",
    "WAN": "wide area network",
    "XDR": "extended detection and response",
}
_ACRONYM = re.compile(r"\b(" + "|".join(map(re.escape, GLOSSARY)) + r")\b")


def spelled_out(text: str) -> str:
    """``text`` with each known acronym followed by its expansion, e.g. ``M365 (Microsoft 365)``."""
    return _ACRONYM.sub(lambda found: f"{found[1]} ({GLOSSARY[found[1]]})", text)
