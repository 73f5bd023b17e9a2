// Spawn + join of N goroutines that each yield once, with as many threads as GOMAXPROCS says
// (Go's default: every core). The bench scripts run it with GOMAXPROCS=2 next to the crate's
// Runtime::spawn on two hubs. Prints "N in S s = U us each".
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

func main() {
	count := 100000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintln(os.Stderr, "usage: spawn [N > 0]")
			os.Exit(2)
		}
		count = v
	}
	done := make([]bool, count)
	var group sync.WaitGroup
	group.Add(count)
	start := time.Now()
	for i := range done {
		go func(slot *bool) {
			runtime.Gosched()
			*slot = true
			group.Done()
		}(&done[i])
	}
	group.Wait()
	elapsed := time.Since(start)
	for i, ok := range done {
		if !ok {
			panic(fmt.Sprintf("goroutine %d never ran", i))
		}
	}
	fmt.Printf("%d in %.3f s = %.2f us each (GOMAXPROCS=%d)\n", count, elapsed.Seconds(),
		elapsed.Seconds()*1e6/float64(count), runtime.GOMAXPROCS(0))
}
