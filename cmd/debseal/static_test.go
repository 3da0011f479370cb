package main

import (
	"debug/elf"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// TestBinaryIsStatic checks the built binary has no ELF interpreter and no
// shared-library dependencies: it must run in a chroot, from a rescue
// system, and before any library it protects is readable.
func TestBinaryIsStatic(t *testing.T) {
	bin := testutil.Binary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: not statically linked", bin)
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a dynamic section", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s imports libraries %v (%v)", bin, libs, err)
	}
}
