-- attack: delete, rename or create files through os (each must be missing)
-- expect: ok
-- result: 'remove=nil rename=nil tmpname=nil setlocale=nil'
return ("remove=%s rename=%s tmpname=%s setlocale=%s"):format(
  tostring(os.remove), tostring(os.rename), tostring(os.tmpname), tostring(os.setlocale))
