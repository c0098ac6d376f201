"""APIv2 XML on the wire: <xml><k><![CDATA[v]]></k>...</xml>."""

from xml.parsers.expat import ExpatError

import xmltodict


def to_xml(fields, root="xml"):
    parts = [f"<{root}>"]
    for key, value in fields.items():
        text = str(value)
        if text.isdigit():
            parts.append(f"<{key}>{text}</{key}>")
        else:
            # "]]>" cannot appear inside CDATA: split it across two sections.
            text = text.replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{key}><![CDATA[{text}]]></{key}>")
    parts.append(f"</{root}>")
    return "".join(parts)


def parse_xml(body):
    """Flat dict of strings, or None when the body is not a WeChat <xml> document."""
    try:
        doc = xmltodict.parse(body)
    except (ExpatError, ValueError, TypeError):
        return None
    data = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None
    return {
        k: ("" if v is None else v) for k, v in data.items() if isinstance(v, (str, type(None)))
    }
