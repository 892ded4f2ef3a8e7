#!/usr/bin/env python3
"""A tiny stand-in for a company's ERP, for the `plano` example integration.

    python3 examples/erp.py [PORT]        # default 8081, on 127.0.0.1 only

GET /clientes/<phone> answers the customer's plan as JSON; it requires
`Authorization: Bearer demo-erp-secret` (the demo tenant's secret).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CUSTOMERS = {
    "5513999999999": {"plano": "Fibra 500 Mega", "vencimento": "2026-12-10", "valor": 129.9,
                      "pontos": 1200},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer demo-erp-secret":
            return self.answer(401, {"erro": "token inválido"})
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "clientes" and parts[1] in CUSTOMERS:
            return self.answer(200, CUSTOMERS[parts[1]])
        return self.answer(404, {"erro": "cliente não encontrado"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"ERP stand-in on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
