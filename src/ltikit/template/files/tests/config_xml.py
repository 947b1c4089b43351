"""Read the placements of the tool's XML configuration with the standard library."""

import xml.etree.ElementTree as ET

NS = {"blti": "http://www.imsglobal.org/xsd/imsbasiclti_v1p0",
      "lticm": "http://www.imsglobal.org/xsd/imslticm_v1p0"}


def parse_xml(data: bytes) -> dict[str, str]:
    root = ET.fromstring(data)
    extensions = root.find("blti:extensions", NS)
    return {options.get("name"): options.find("lticm:property[@name='enabled']", NS).text
            for options in extensions.findall("lticm:options", NS)}
