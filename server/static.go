package server

import (
	"io/fs"
	"net/http"
)

// staticFiles serves fsys (web/static) under /static/.
func staticFiles(fsys fs.FS) http.Handler {
	files := http.StripPrefix("/static/", http.FileServerFS(validNames{fsys}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// validNames answers a name fs.FS does not allow (one that is not UTF-8,
// say) as missing. A sub-tree made by fs.Sub calls it fs.ErrInvalid, which
// http.FileServer turns into a 500 for what is a client's bad request.
type validNames struct{ fs.FS }

func (v validNames) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return v.FS.Open(name)
}
