package main

import (
	"embed"
	"io/fs"
	"net/http"
)

// The demo chat page: plain HTML, CSS and two ES modules (pondsocket.js
// speaks the PondSocket protocol over the browser's WebSocket, app.js is
// the page), compiled into the binary.
//
//go:embed web
var webFiles embed.FS

// pageHandler serves the files of web/ at the root: / is index.html.
func pageHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Small files that change with the binary: always revalidate.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Only our own files; the socket is same-origin ('self' covers
		// ws: and wss: on the page's host in CSP Level 3 browsers).
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		files.ServeHTTP(w, r)
	})
}
