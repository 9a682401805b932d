import SmarthostCore
print("smarthost")
