// Package web holds keygate's pages, static files and mail templates,
// embedded in the binary so there is no build step and nothing to deploy
// beside it. It has no logic: server/render parses the page templates,
// server/mail the mail ones, the server serves static/.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates static mail
var files embed.FS

// Templates is the tree of html/template pages.
func Templates() fs.FS { return mustSub("templates") }

// Mail is the tree of mail templates: name.txt (text/template) and
// name.html (html/template) per message, each defining "body" for its
// layout.
func Mail() fs.FS { return mustSub("mail") }

// Static is the tree served under /static/.
func Static() fs.FS { return mustSub("static") }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(err) // the directories are embedded above
	}
	return sub
}
