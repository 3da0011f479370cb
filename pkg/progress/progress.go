// Package progress is how a long operation tells the CLI how far it is: it
// states what it counts and how many there will be, then adds what it has
// done. It owns only that interface; rendering it (on a terminal, or not at
// all) is the CLI's business. It imports no other debseal package, so any
// of them can report progress without depending on another.
package progress

// Unit is what an operation counts, as the renderer prints it after the
// numbers ("auditing: 12/700 packages").
type Unit string

// The units debseal's operations count.
const (
	Files    Unit = "files"
	Packages Unit = "packages"
)

// Meter receives counts while an operation runs. Start states the phase,
// the unit and the total before any Add; the Adds of one phase sum to at
// most total (exactly total when the phase runs to its end); Done ends
// the phase. Implementations must be safe for concurrent use of Add.
type Meter interface {
	Start(phase string, unit Unit, total int)
	Add(n int)
	Done()
}

type none struct{}

func (none) Start(string, Unit, int) {}
func (none) Add(int)                 {}
func (none) Done()                   {}

// None discards progress.
var None Meter = none{}
