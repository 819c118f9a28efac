# Warnings live on an INTERFACE target so every hookmq target gets the same set.
add_library(hq_warnings INTERFACE)
target_compile_options(hq_warnings INTERFACE
    -Wall -Wextra -Wconversion -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
    -Wno-unused-parameter)
if(HQ_WERROR)
    target_compile_options(hq_warnings INTERFACE -Werror)
endif()
