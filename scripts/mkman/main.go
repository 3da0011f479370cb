// Command mkman renders the man page source (docs/debseal.8.md, markdown
// as go-md2man reads it) to roff.
//
//	go run ./scripts/mkman docs/debseal.8.md > debseal.8
package main

import (
	"fmt"
	"os"

	"github.com/cpuguy83/go-md2man/v2/md2man"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkman SOURCE.md > PAGE")
		os.Exit(64)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkman:", err)
		os.Exit(1)
	}
	os.Stdout.Write(md2man.Render(src))
}
