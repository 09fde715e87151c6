package main

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// cpuMask is a kernel cpu_set_t of 1024 CPUs.
type cpuMask [16]uint64

func (m *cpuMask) set(cpu int) { m[cpu/64] |= 1 << (uint(cpu) % 64) }

func (m *cpuMask) cpus() []int {
	var l []int
	for i := 0; i < len(m)*64; i++ {
		if m[i/64]&(1<<(uint(i)%64)) != 0 {
			l = append(l, i)
		}
	}
	return l
}

func affinityGet() (cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0,
		unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return m, e
	}
	return m, nil
}

// affinitySetAll applies m to every thread of the process.  Affinity is
// per thread in Linux and a new thread inherits its creator's, so after
// two passes over /proc/self/task (the second catches a thread created
// during the first) every present and future thread has it.
func affinitySetAll(m cpuMask) error {
	for pass := 0; pass < 2; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid),
				unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
			if errno != 0 && errno != syscall.ESRCH { // ESRCH: it has exited
				return errno
			}
		}
	}
	return nil
}
