"""志愿服务证明 outside the chat: the PDF, the verification page and the signed download."""
