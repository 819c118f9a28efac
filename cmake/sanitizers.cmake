# -DHQ_SANITIZE=address,undefined builds everything with those sanitizers (CI runs it).
set(HQ_SANITIZE "" CACHE STRING "comma-separated -fsanitize= list (address,undefined,thread)")
if(HQ_SANITIZE)
    add_compile_options(-fsanitize=${HQ_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    add_link_options(-fsanitize=${HQ_SANITIZE})
endif()
