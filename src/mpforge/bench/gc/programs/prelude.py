# ruff: noqa: F821
# mypy: ignore-errors
# bench-gc guest program (MicroPython 1.8 on the emulated pyboard): the helpers every
# program starts with. Parameters come first, as `_NAME = const(N)` lines
# (mpforge.bench.gc.guest.assignments); the names used here and not defined (the
# inline assembler's registers and labels) are the assembler's, hence the noqa above.
# MicroPython 1.8 syntax: no f-strings; single-precision floats on the pyboard. The
# timing helpers never allocate: they store small ints into a list made once.
import gc

import micropython
import stm

_T = [0] * 8
# TIM2 (32 bits) counts at 1 GHz of QEMU's virtual clock: under -icount
# shift=0, one count per instruction. Addresses are named once: 0x40000000
# and up are not small ints, and arithmetic on them would allocate.
_TIM_CR1 = 0x40000000
_TIM_SR = 0x40000010
_TIM_EGR = 0x40000014
_TIM_CNT = 0x40000024
_TIM_PSC = 0x40000028
_TIM_ARR = 0x4000002C
_SYST_CSR = 0xE000E010
_NVIC_ISER = (0xE000E100, 0xE000E104, 0xE000E108)
_NVIC_ICER = (0xE000E180, 0xE000E184, 0xE000E188)
_SAVED = [0, 0, 0, 0]


def _clock_start():
    stm.mem32[_TIM_PSC] = 0
    stm.mem32[_TIM_ARR] = 0x3FFFFFFF   # counts stay small ints
    stm.mem32[_TIM_EGR] = 1            # load PSC and ARR
    stm.mem32[_TIM_SR] = 0             # clear the wrap flag
    stm.mem32[_TIM_CNT] = 0
    stm.mem32[_TIM_CR1] = 1


def _mark(k):
    # no allocation: a small int into a list made once
    _T[k] = stm.mem32[_TIM_CNT]


def _wrapped():
    return stm.mem32[_TIM_SR] & 1


def _quiet():
    # No interrupts while a workload runs: they keep wall-clock time, so they
    # would land on other instructions, and leave other words on the stack
    # for the conservative collector to find, in every run. Masks the
    # peripheral interrupts (timers, flash, UART) and SysTick's.
    for i in range(3):
        _SAVED[i] = stm.mem32[_NVIC_ISER[i]]
        stm.mem32[_NVIC_ICER[i]] = _SAVED[i]
    _SAVED[3] = stm.mem32[_SYST_CSR]
    stm.mem32[_SYST_CSR] = _SAVED[3] & ~2


def _unquiet():
    stm.mem32[_SYST_CSR] = _SAVED[3]
    for i in range(3):
        stm.mem32[_NVIC_ISER[i]] = _SAVED[i]


def _report(tag, *values):
    print(tag, ' '.join(str(v) for v in values))


@micropython.asm_thumb
def _zero_below_sp(r0):
    mov(r1, sp)
    movw(r2, 0)
    label(loop)
    sub(r1, r1, 4)
    str(r2, [r1, 0])
    sub(r0, r0, 1)
    bne(loop)


def _clean():
    # The collector is conservative: a stale word in the free heap or below the
    # stack pointer that looks like a pointer keeps garbage alive. What is left
    # there depends on what ran before, so zero both: every run starts equal.
    gc.collect()
    gc.disable()
    keep = []
    n = 65536
    while n >= 16:
        try:
            keep.append(bytearray(n))
        except MemoryError:
            n //= 2
    # single free blocks between live ones: an empty bytearray fills one
    try:
        while True:
            keep.append(bytearray(0))
    except MemoryError:
        pass
    keep = None
    gc.enable()
    gc.collect()
    _zero_below_sp((_STACK_SCRUB - micropython.stack_use()) // 4)
