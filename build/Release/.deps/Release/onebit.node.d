cmd_Release/onebit.node := ln -f "Release/obj.target/onebit.node" "Release/onebit.node" 2>/dev/null || (rm -rf "Release/onebit.node" && cp -af "Release/obj.target/onebit.node" "Release/onebit.node")
