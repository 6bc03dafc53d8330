"""XML namespaces of the Office Open XML parts formtool writes and reads (generate/, read/)."""

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
W15_NS = "http://schemas.microsoft.com/office/word/2012/wordml"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
W = f"{{{W_NS}}}"
W15 = f"{{{W15_NS}}}"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
