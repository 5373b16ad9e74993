"""The compiled parts of neardup (everything else is in pyproject.toml).

Two C extensions against the plain CPython API, no other header: ``_kernel.c`` (normalise,
shingle, MinHash, split paragraphs, band tables and look-ups) and ``_pairs.c`` (band keys,
bucket pairs, exact verification, document frequencies and weights). Both are optional: where
no C compiler is found the build goes on and neardup runs its numpy path, which computes the
same values (tests compare the two).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("neardup._kernel", ["src/neardup/_kernel.c"], extra_compile_args=["-O3"], optional=True),
    Extension("neardup._pairs", ["src/neardup/_pairs.c"], extra_compile_args=["-O3"], optional=True),
])
