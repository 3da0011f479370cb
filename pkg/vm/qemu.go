package vm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Disk is a virtio block device; the first is the guest's /dev/vda.
type Disk struct {
	Path     string
	Format   string // raw or qcow2
	ReadOnly bool
}

// Config is one boot of a guest.
type Config struct {
	Kernel, Initrd string
	Disks          []Disk
	Dir            string // console.log and the agent's socket go here
	MemoryMB       int    // 1024 when zero
	CPUs           int    // 2 when zero
	Accel          string // qemu -accel values, comma-separated; "tcg" when empty
	Append         string // extra kernel command line
}

// Machine is a running qemu.
type Machine struct {
	*Agent
	cmd     *exec.Cmd
	conn    net.Conn
	console string
	sock    string
	exited  chan struct{}
	waitErr error
}

const agentPort = "org.debseal.agent"

// Boot starts qemu with cfg and connects to the agent's port. It does not
// wait for the guest: call WaitReady.
func Boot(cfg Config) (*Machine, error) {
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 1024
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	sock := filepath.Join(cfg.Dir, "agent.sock")
	console := filepath.Join(cfg.Dir, "console.log")
	os.Remove(sock)
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-m", strconv.Itoa(cfg.MemoryMB), "-smp", strconv.Itoa(cfg.CPUs),
		"-kernel", cfg.Kernel, "-initrd", cfg.Initrd,
		"-append", strings.TrimSpace("root=/dev/vda rw console=ttyS0 panic=-1 " + cfg.Append),
		"-serial", "file:" + console,
		"-nic", "none",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,chardev=agent,name=" + agentPort,
	}
	for _, a := range strings.Split(cfg.Accel, ",") {
		args = append(args, "-accel", a)
	}
	if strings.Contains(cfg.Accel, "tcg") {
		args = append(args, "-cpu", "max")
	}
	for _, d := range cfg.Disks {
		opt := "file=" + d.Path + ",if=virtio,format=" + d.Format + ",cache=writeback"
		if d.ReadOnly {
			opt += ",readonly=on"
		}
		args = append(args, "-drive", opt)
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start qemu: %w", err)
	}
	m := &Machine{cmd: cmd, console: console, exited: make(chan struct{})}
	go func() {
		m.waitErr = cmd.Wait()
		if stderr.Len() > 0 {
			m.waitErr = fmt.Errorf("%v: %s", m.waitErr, strings.TrimSpace(stderr.String()))
		}
		close(m.exited)
	}()
	m.sock = sock
	return m, nil
}

// bootDone is what the guest's serial getty prints once systemd has
// started the login prompts: the agent's port is open by then.
const bootDone = " login: "

// WaitReady waits until the agent answers, for at most timeout. It
// connects to the agent's socket only once the console shows the login
// prompt: bytes the host sends before the guest opens its end of the
// virtio-serial port stall the channel for good (qemu stops reading the
// socket and does not start again when the port opens).
func (m *Machine) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(m.Console(), bootDone) {
		if time.Now().After(deadline) {
			return fmt.Errorf("vm: no login prompt after %v: %w", timeout, ErrTimeout)
		}
		select {
		case <-m.exited:
			return fmt.Errorf("vm: qemu exited while booting: %v", m.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
	c, err := net.Dial("unix", m.sock)
	if err != nil {
		return fmt.Errorf("vm: agent socket %s: %w", m.sock, err)
	}
	m.conn = c
	m.Agent = NewAgent(c, c)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("vm: agent silent after %v: %w", timeout, ErrTimeout)
		}
		// A timed-out request is forgotten; a late answer to it is
		// ignored, so asking again is safe.
		_, err := m.Run(min(left, 2*time.Second), "true")
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrTimeout) {
			return err
		}
		select {
		case <-m.exited:
			return fmt.Errorf("vm: qemu exited while booting: %v", m.waitErr)
		default:
		}
	}
}

// Kill cuts the power: SIGKILL to qemu, nothing flushed.
func (m *Machine) Kill() error {
	select {
	case <-m.exited:
		return nil
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("vm: kill qemu %d: %w", m.cmd.Process.Pid, err)
	}
	<-m.exited
	if m.conn != nil {
		m.conn.Close()
	}
	return nil
}

// WaitExit waits up to timeout for qemu to exit by itself (the guest
// powered off or rebooted: qemu runs with -no-reboot).
func (m *Machine) WaitExit(timeout time.Duration) error {
	select {
	case <-m.exited:
		if m.conn != nil {
			m.conn.Close()
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("vm: qemu still running after %v: %w", timeout, ErrTimeout)
	}
}

// Console returns the serial console's log so far.
func (m *Machine) Console() string {
	b, err := os.ReadFile(m.console)
	if err != nil {
		return fmt.Sprintf("(console log: %v)", err)
	}
	return string(b)
}
