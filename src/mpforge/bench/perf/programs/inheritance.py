# ruff: noqa: B007, E402, I001, UP031, UP032
# mypy: ignore-errors
# perf workload: method lookup through a class hierarchy, super() calls
class A:
    def f(self):
        return 1


class B(A):
    def f(self):
        return super().f() + 2


class C(B):
    def g(self):
        return self.f() * 2


c = C()
t = 0
for i in range(6000):
    t += c.g() + c.f()
print(t, isinstance(c, A))
