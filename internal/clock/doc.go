// Package clock is the time seam of quorumkv. Everything that reads the time
// or waits (the failure detector, hint replay, anti-entropy timers, request
// deadlines in the coordinator, receipts) takes a Clock, so tests can run a
// cluster on a Fake clock, step time forward and skew one node, without
// sleeping on the wall clock.
//
// Real() is backed by package time. NewFake() starts at a fixed instant and
// moves only when Advance or Set is called; timers fire synchronously inside
// Advance, in deadline order.
package clock
