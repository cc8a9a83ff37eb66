package resource

import "net/http"

// avatar is the demo user's photo.
const avatar = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="32" fill="#2f5bea"/><circle cx="32" cy="25" r="12" fill="#fff"/><path d="M12 56c3-12 12-17 20-17s17 5 20 17" fill="#fff"/></svg>`

// ServePhoto serves the demo user's photo at GET /photos/{name}.
func ServePhoto(mux *http.ServeMux) {
	mux.HandleFunc("GET /photos/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write([]byte(avatar))
	})
}
