// Command synthdb builds a synthetic installed system of N packages under a
// directory, for measuring how debseal's cost grows with the size of the
// dpkg database (make bench's scaling table).
//
//	go run ./scripts/synthdb [-n N] [-conffile-every K] [-script-every K] DIR
//
// Each package synthNNNNNN owns one small regular file,
// /usr/share/synth/synthNNNNNN/data, listed with its directories in
// info/<pkg>.list and hashed in info/<pkg>.md5sums, as dpkg would have
// left it after "dpkg -i". Every K-th package also owns a conffile
// /etc/synth/<pkg>.conf (in the status file's Conffiles field and
// info/<pkg>.conffiles), and every K-th has a postinst; each package but
// the first depends on the one before it. The result is a database dpkg
// itself accepts: "dpkg --root DIR --audit" prints nothing, and
// "dpkg --root DIR -l", "dpkg-query --admindir DIR/var/lib/dpkg -W" list
// every package. DIR must not exist or be empty.
//
// Files are written by a few goroutines without fsync (a test tree, not a
// system): 50,000 packages take seconds.
package main

import (
	"bufio"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

type options struct {
	dir          string
	n            int
	conffileEach int
	scriptEach   int
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 1000, "number of packages")
	flag.IntVar(&o.conffileEach, "conffile-every", 20, "every K-th package has a conffile (0: none)")
	flag.IntVar(&o.scriptEach, "script-every", 5, "every K-th package has a postinst (0: none)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: synthdb [-n N] [-conffile-every K] [-script-every K] DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || o.n < 1 {
		flag.Usage()
		os.Exit(64)
	}
	o.dir = flag.Arg(0)
	if err := build(o); err != nil {
		fmt.Fprintln(os.Stderr, "synthdb:", err)
		os.Exit(1)
	}
}

func name(i int) string { return fmt.Sprintf("synth%06d", i) }

func build(o options) error {
	if ents, err := os.ReadDir(o.dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s: not empty", o.dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	admin := filepath.Join(o.dir, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers", "alternatives"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"var/log", "usr/share/synth", "etc/synth", "tmp"} {
		if err := os.MkdirAll(filepath.Join(o.dir, d), 0o755); err != nil {
			return err
		}
	}
	for f, content := range map[string]string{
		"info/format":       "1\n",
		"available":         "",
		"diversions":        "",
		"statoverride":      "",
		"triggers/Unincorp": "",
		"triggers/File":     "",
		"arch":              "amd64\n",
		"cmethopt":          "apt apt\n",
	} {
		if err := os.WriteFile(filepath.Join(admin, f), []byte(content), 0o644); err != nil {
			return err
		}
	}

	stanzas := make([][]byte, o.n)
	work := make(chan int, 256)
	errc := make(chan error, runtime.NumCPU()*2)
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU()*2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				st, err := writePackage(o, admin, i)
				if err != nil {
					errc <- err
					for range work {
					}
					return
				}
				stanzas[i] = st
			}
		}()
	}
	for i := 0; i < o.n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}

	// The status file last, as dpkg writes it: a temporary file renamed
	// into place.
	tmp := filepath.Join(admin, "status-new")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	for i, st := range stanzas {
		if i > 0 {
			bw.WriteByte('\n')
		}
		bw.Write(st)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(admin, "status-old"), nil, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(admin, "status"))
}

// writePackage writes package i's files and info files and returns its
// status stanza.
func writePackage(o options, admin string, i int) ([]byte, error) {
	pkg := name(i)
	dir := "/usr/share/synth/" + pkg
	data := dir + "/data"
	content := fmt.Appendf(nil, "%s: synthetic package %d of %d\n", pkg, i+1, o.n)
	if err := os.Mkdir(filepath.Join(o.dir, dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.dir, data), content, 0o644); err != nil {
		return nil, err
	}
	list := fmt.Appendf(nil, "/.\n/usr\n/usr/share\n/usr/share/synth\n%s\n%s\n", dir, data)
	md5sums := fmt.Appendf(nil, "%x  %s\n", md5.Sum(content), data[1:])

	var conffiles []byte
	hasConf := o.conffileEach > 0 && i%o.conffileEach == 0
	if hasConf {
		conf := "/etc/synth/" + pkg + ".conf"
		body := fmt.Appendf(nil, "# %s\nsetting = %d\n", pkg, i)
		if err := os.WriteFile(filepath.Join(o.dir, conf), body, 0o644); err != nil {
			return nil, err
		}
		list = fmt.Appendf(list, "/etc\n/etc/synth\n%s\n", conf)
		conffiles = fmt.Appendf(nil, " %s %x\n", conf, md5.Sum(body))
		if err := os.WriteFile(filepath.Join(admin, "info", pkg+".conffiles"), []byte(conf+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	if o.scriptEach > 0 && i%o.scriptEach == 0 {
		script := fmt.Sprintf("#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n\techo \"%s configured\" >/dev/null\nfi\nexit 0\n", pkg)
		if err := os.WriteFile(filepath.Join(admin, "info", pkg+".postinst"), []byte(script), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(admin, "info", pkg+".list"), list, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(admin, "info", pkg+".md5sums"), md5sums, 0o644); err != nil {
		return nil, err
	}

	st := fmt.Appendf(nil, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: misc\nInstalled-Size: 8\n"+
		"Maintainer: debseal synthdb <synthdb@debseal.invalid>\nArchitecture: all\nVersion: 1.0-1\n", pkg)
	if i > 0 {
		st = fmt.Appendf(st, "Depends: %s (>= 1.0)\n", name(i-1))
	}
	if hasConf {
		st = fmt.Appendf(st, "Conffiles:\n%s", conffiles)
	}
	st = fmt.Appendf(st, "Description: synthetic package %d\n Written by debseal's scripts/synthdb to measure scaling.\n", i)
	return st, nil
}
