package main

import (
	"embed"
	"io"
	"io/fs"
	"net/http"
)

// The demo chat page: plain HTML, CSS and two ES modules (pondsocket.js
// speaks the PondSocket protocol over the browser's WebSocket, app.js is
// the page), compiled into the binary. admin/ is the admin page.
//
//go:embed web admin
var webFiles embed.FS

// pageCSP allows only the page's own files; the socket and the API calls
// are same-origin ('self' covers ws: and wss: on the page's host in CSP
// Level 3 browsers).
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// staticHandler serves the embedded folder dir: / is its index.html. Small
// files that change with the binary: always revalidated.
func staticHandler(dir string) http.Handler {
	sub, err := fs.Sub(webFiles, dir)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", pageCSP)
		files.ServeHTTP(w, r)
	})
}

// pageHandler serves the files of web/ at the root: / is index.html.
func pageHandler() http.Handler { return staticHandler("web") }

// adminOff is the answer of /admin when there is no server API to show.
const adminOff = "The admin page is off: it needs the server API, that is a configuration file (--config) with api.key.\n"

// registerAdmin serves the admin page at /admin/ (admin/ of the binary; the
// icon and theme.css are the demo's). The page itself is public: it holds
// no data and asks for the API key, which every call it makes then
// carries. Without the server API (no api.key, or the demo) /admin answers
// 404 saying so.
func registerAdmin(mux *http.ServeMux, enabled bool) {
	if !enabled {
		off := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, adminOff)
		})
		mux.Handle("GET /admin", off)
		mux.Handle("GET /admin/", off)
		return
	}
	mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	mux.Handle("GET /admin/", http.StripPrefix("/admin", staticHandler("admin")))
	mux.Handle("GET /admin/favicon.svg", http.StripPrefix("/admin", pageHandler()))
	mux.Handle("GET /admin/theme.css", http.StripPrefix("/admin", pageHandler()))
}
